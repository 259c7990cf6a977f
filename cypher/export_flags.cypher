// Every Flag node as stored, retired ones (active = false) included: their values are kept.
MATCH (f:Flag)
RETURN collect([f.name, f.type, f.default, f.set, f.description, f.definition, f.active]) AS flags
