//! Shared helpers for diffcopy's end-to-end tests (the tests live in `tests/`).
