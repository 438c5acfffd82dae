//! Test support lives in the crate (feature `testing`) so that other crates' tests
//! share it.
pub use anpr_store_postgres::testing::*;
