"""The operator's loops: subjects (observe → incidents), incidents (agent → actions), chaos."""
