//! The releases the mock's repository starts with ([`ReleaseSpec::fixtures`], the seeds'
//! two), as the clients' tests name them: one definition instead of a copy per test.
//!
//! [`ReleaseSpec::fixtures`]: crate::ReleaseSpec::fixtures

/// The seeds' first release (« Lisez-moi » of 22 February 2019, one maintenance script).
pub const FIRST: &str = "3.00.70";

/// The seeds' second and latest release (19 March 2019, two maintenance scripts).
pub const LATEST: &str = "3.00.72";
