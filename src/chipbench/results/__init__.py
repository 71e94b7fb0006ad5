"""Results documents: building one from a run (`document`), derived metrics (`metrics`), files on disk
(`files`: load, write atomically, paths) and how they are shown (`render`). May import core and
platform; never measure, workloads, execution, gate or cli."""
