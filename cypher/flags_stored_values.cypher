// The distinct values stored for each of $names, to check them against a new catalog.
UNWIND $names AS name
MATCH (:Flag {name: name})<-[s:SET]-(:Org)
RETURN name, collect(DISTINCT s.value) AS values
