UNWIND $ids AS id
CREATE (:Org {id: id})
