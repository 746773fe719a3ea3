//! Server tasks over HTTP: every action from each state on the fake driver
//! (valid ones complete and change the server as Nova would, invalid ones
//! get 409), argument rules, items and both task lists.
