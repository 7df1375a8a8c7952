//! V4L2 cameras as a source (being written).
