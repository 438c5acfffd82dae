//! ANPR decoding tables (tabelle di decodifica) shipped inside the product.
#![forbid(unsafe_code)]
