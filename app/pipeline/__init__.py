"""What the agents do to each record: decode it, plan its outputs, bound it, dead-letter it."""
