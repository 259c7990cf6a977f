module graphflags/bench/sse-reader

go 1.22
