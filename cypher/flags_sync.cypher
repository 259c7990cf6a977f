// $flags: [{name, type, default, set, description, definition}]; `definition` is the
// whole definition as JSON, compared at the next sync to write only what changed.
UNWIND $flags AS flag
MERGE (f:Flag {name: flag.name})
SET f.type = flag.type, f.default = flag.default, f.set = flag.set,
    f.description = flag.description, f.definition = flag.definition, f.active = true
