"""Tables of the saga log and the backbone (schema `sagas`)."""
