"""The test harness shared by every module: free ports, Neo4j homes, served `graphflags` processes."""
