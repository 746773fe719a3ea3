//! Server types over HTTP: CRUD, lookup by name, visibility, tags and shares
//! between two projects and an admin.
