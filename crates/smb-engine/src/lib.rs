//! smb-engine (placeholder, being written)
