//! The backend-independent conformance suite, run against PostgreSQL: each test on a
//! fresh random schema, dropped when the test ends. Without a configured server the
//! tests fail, unless `ANPR_SKIP_POSTGRES=1` skips them explicitly (see `common`).

mod common;

anpr_store::conformance_tests!(common::fresh());

mod sicurezza {
    use super::common;

    anpr_store::conformance_sicurezza_tests!(common::fresh());
}
anpr_store::conformance_elaborazioni_tests!(common::fresh());
