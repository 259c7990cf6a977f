// How many orgs set $flag: a degree, read without expanding the relationships.
MATCH (f:Flag {name: $flag})
RETURN COUNT { (f)<-[:SET]-() } AS setters
