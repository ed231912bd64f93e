//! smb-wire (placeholder, being written)
