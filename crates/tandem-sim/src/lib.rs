//! Deterministic network impairments and a virtual-time runner for `tandem-proto`.
//!
//! [`impair`] holds seeded, composable models of what Wi-Fi and AWDL do to datagrams —
//! delay, jitter, random and burst loss, reordering, duplication, a capacity limit (which may
//! step down mid-run), the periodic stall with burst release of an AWDL channel switch, and a
//! path's outage. The stall schedule belongs to the radio: one link may sit on its
//! infrastructure side (dead inside the windows) and another on its AWDL side (live only
//! inside them); the assumptions behind that model and their sources are in
//! [the shared radio](impair#the-shared-radio). [`profile`] names the measurement profiles
//! of the design (`clean`, `wifi`, `awdl-stall`, …) and the pairs of links for two paths
//! (`awdl-dual`, `dual-one-dies`, …), and parses spec strings. [`runner`] streams a
//! synthetic encoder's frames between a real sender and receiver endpoint through those
//! links in virtual time, over one path or two (each datagram on the paths the sender's
//! policy picks); [`report`] turns a run into the
//! figures the project's targets are stated in, and [`plot`] draws them. The same models
//! drive the real-time UDP relay, `tandem-relay`.
//!
//! This crate does no IO besides writing a plot, and reads no clock except to report how
//! long a simulation took (`wall_ms`).
//!
//! # Run-loop contract
//!
//! A [`impair::Link`] is a pure function of its seed and its inputs: feed it
//! `send(sent, size)` in non-decreasing `sent` order and it returns when (if at all) each
//! copy of the datagram arrives. The runner keeps one link per direction, a heap of
//! datagrams in flight, and drives both endpoints through their `Endpoint` contract at each
//! event time.

#![warn(missing_docs)]

pub mod impair;
pub mod plot;
pub mod profile;
pub mod report;
pub mod runner;
