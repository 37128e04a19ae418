"""Background jobs as rows: create, progress, finish, cancel (``records``), and finished
synchronous actions recorded as operations (``operations``). Running them is ``workers``'s."""
