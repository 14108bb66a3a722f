//! The facegate binary's library: the HTTP server (`server`) and the command line (`cli`), which call
//! the same service functions.

pub mod cli;
pub mod server;
