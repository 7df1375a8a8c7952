//! The X11 screen as a source (being written).
