//! The Net-entreprises client protocol, shared by the agents that talk to it (the
//! credential verifier, the deposit agent): no tonic and no gRPC here, the agents convert
//! at their edge.
//!
//! - [`service`]: the service codes (`<service>` of an authentication: 25, 97…);
//! - [`outcome`]: what an authentication found ([`Outcome`], with its stable code, its
//!   French sentence and the realm read), and the one definition of a *refusal*
//!   ([`Outcome::is_refusal`]: the outcomes that count against a declarant's budget);
//! - [`auth`]: the request (XML body with escaped values, URL), reading the answer, the
//!   token kept as a secret ([`Token`]), and the realms of business services' 401s;
//! - [`clients`]: HTTP clients kept per network settings, and [`Authenticator`], one
//!   authentication attempt with the no-retry-after-refusal rule;
//! - `proto` (feature `proto`): the outcome as the agents answer it
//!   (`iea.agent.v1.VerifyResponse`), for their gRPC edge; without the feature this
//!   crate knows nothing of protobuf.
//!
//! Invariants: a refusal is never retried, nor is an attempt that may have reached the
//! server (only a connection that never opened is tried again, in *Étendu* mode); the
//! password and the token are secrets, never logged, and a token leaves this crate only
//! as a [`Token`], which can be attached to a request but not read.

pub mod auth;
pub mod clients;
pub mod outcome;
#[cfg(feature = "proto")]
pub mod proto;
pub mod service;

pub use auth::{
    AUTH_PATH, BusinessRefusal, Token, auth_url, business_refusal, parse_realm, read_limited,
    xml_body,
};
pub use clients::{Authenticator, Options, Prepared};
/// The identity an authentication takes, as typed and checked (`iea-declarant`).
pub use iea_declarant::{Identity, TypedIdentity};
pub use outcome::{Authentication, Outcome};
pub use service::ServiceCode;
