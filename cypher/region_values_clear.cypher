// $values: [{org, flag}]: the org sets no value of the flag any more.
UNWIND $values AS v
OPTIONAL MATCH (:Org {id: v.org})-[s:SET]->(:Flag {name: v.flag})
DELETE s
