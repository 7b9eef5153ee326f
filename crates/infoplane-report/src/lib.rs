//! Pictures of results: information plane, trajectories, per-layer profiles, proportions; one HTML report.
