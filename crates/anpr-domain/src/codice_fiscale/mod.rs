//! Codice fiscale (placeholder until implemented).
