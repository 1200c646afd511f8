//! What the three mock servers share.
//!
//! A mock listens four times:
//! - `https`: its service over TLS, with a certificate from the mocks test CA (the
//!   "default port" of the real server);
//! - `fallback`: the same service over TLS on a second port, which stays open when the
//!   default port is closed (`close_default_port`);
//! - `http`: the same service in plain HTTP, for the *Normal* connection mode;
//! - `admin`: the control API under `/__admin/`, plain HTTP, every call needing
//!   `Authorization: Bearer <admin token>`. It is a separate listener so that a fault
//!   injected into the service ports never cuts the test off from the controls.
//!
//! Faults ([`Faults`], `POST /__admin/faults`) apply to the service ports only:
//! `unavailable` answers 503 with an empty body, `slow` delays each answer by
//! `delay_ms`, `reset` closes each new connection at once without a response; `close_default_port`
//! resets every connection to the default HTTPS port only. A mock's own faults may cut a
//! connection in the middle of a request: an answer carrying [`CutConnection`] is never
//! sent. A mock with faults of its own serves `/__admin/faults` itself
//! ([`MockServer::bind_own_faults_api`]).
//!
//! Every control API answers its errors the same way ([`AdminError`]): a status and
//! `{"error": "<code>", "message": "<French sentence>"}`.

pub mod admin;
mod faults;
mod serve;

pub use admin::{AdminError, AdminJson};
pub use faults::{FaultMode, FaultSettings, Faults};
pub use serve::{CutConnection, MockListen, MockServer, require_bearer};
