#![doc = include_str!("../README.md")]
//!
//! This crate only holds the runnable examples (`cargo run --example quickstart`) and
//! compiles the README's code as a doctest, so the README cannot drift from the API.
