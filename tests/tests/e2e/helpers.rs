//! The suite's helpers are the one stack driver, `iea-stack-testkit` (`TestStack`: the
//! embedded stack in a temporary directory, or a composed one; `authed`, the mocks'
//! `MockAdmin`, `test_database`, `eventually`, `wait_for`, `Tinyproxy`…), re-exported
//! under the names the tests use (`crate::helpers::…`, or `#[path = "e2e/helpers.rs"] mod
//! helpers;` in the suite's other binaries).

pub use iea_stack_testkit::*;
