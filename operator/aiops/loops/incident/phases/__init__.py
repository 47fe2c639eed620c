"""One module per phase of an Incident, each with its `step(driver, incident, writer)`; the
table in `aiops.loops.incident.machine` says which handles which phase and where it may go."""
