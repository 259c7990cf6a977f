// $rows: [{org, flag}], the values a batch leaves cleared.
UNWIND $rows AS row
MATCH (:Org {id: row.org})-[s:SET]->(:Flag {name: row.flag})
DELETE s
