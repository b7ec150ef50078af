"""Customer service during and after the move: a person's migration looked up, the statements
sent at each cutover, the unlinked users a reminder campaign goes to, and what to tell people."""
