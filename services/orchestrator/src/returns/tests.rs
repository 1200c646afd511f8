//! Tests of the following with a fake deposit agent.
