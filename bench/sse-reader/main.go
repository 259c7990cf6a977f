// sse-reader holds many OpenFeature event streams open and notes when each hears a change:
// the client side of bench/streams.py, in Go so that reading 10,000 streams costs a small
// part of a core (a Python reader took most of one, on the cores the service needs).
//
// It reads one stream URL per line on stdin until an empty line, opens them all (at most
// OPENING at a time, its one argument, default 100; a 503 is tried again twice), and prints
// "open OPENED FAILED" and the first error, quoted. Then it answers commands, one per line on
// stdin:
//
//	wait K MS   wait until every open stream has heard K refetchEvaluation events in all (at most
//	            MS milliseconds), then print, per stream in input order, the Unix time in nanoseconds
//	            at which it heard its K-th (0: not yet; -1: never opened), one per line, then "done"
//	cpu         print this process's CPU seconds (user + system)
//
// and exits at the end of stdin. Times are wall-clock (CLOCK_REALTIME), the clock Python's
// time.time_ns() reads on the same machine.
package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

var refetch = []byte("refetchEvaluation") // in every event's data, and nowhere else in a stream

type stream struct {
	mu     sync.Mutex
	opened bool    // its first bytes arrived: the service holds its subscription
	heard  []int64 // Unix ns of each refetchEvaluation
}

// waiting: the stream is open and has heard fewer than k events.
func (s *stream) waiting(k int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opened && len(s.heard) < k
}

// at is the Unix ns at which the stream heard its k-th event: 0 if not yet, -1 if it never opened.
func (s *stream) at(k int) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.opened {
		return -1
	}
	if k == 0 || len(s.heard) < k {
		return 0
	}
	return s.heard[k-1]
}

// follow reads the body until it ends, noting the arrival of each event; `opened` is called once
// the stream's first bytes (the service's opening comment) arrived: it holds the subscription then.
func (s *stream) follow(resp *http.Response, opened func()) {
	defer resp.Body.Close()
	buffer := make([]byte, 4096)
	tail := []byte{}
	first := true
	for {
		n, err := resp.Body.Read(buffer)
		if n > 0 {
			now := time.Now().UnixNano()
			if first {
				first = false
				s.mu.Lock()
				s.opened = true
				s.mu.Unlock()
				opened()
			}
			seen := append(tail, buffer[:n]...)
			if found := bytes.Count(seen, refetch); found > 0 {
				s.mu.Lock()
				for i := 0; i < found; i++ {
					s.heard = append(s.heard, now)
				}
				s.mu.Unlock()
			}
			keep := len(refetch) - 1
			if len(seen) < keep {
				keep = len(seen)
			}
			tail = append([]byte{}, seen[len(seen)-keep:]...)
		}
		if err != nil {
			return
		}
	}
}

func main() {
	opening := 100
	if len(os.Args) > 1 {
		if n, err := strconv.Atoi(os.Args[1]); err == nil && n > 0 {
			opening = n
		}
	}
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	var urls []string
	for in.Scan() {
		line := strings.TrimSpace(in.Text())
		if line == "" {
			break
		}
		urls = append(urls, line)
	}
	client := &http.Client{Transport: &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: -1, // every stream its own connection, none kept idle
		DisableCompression:  true,
	}}
	streams := make([]*stream, len(urls))
	gate := make(chan struct{}, opening)
	var wait sync.WaitGroup
	var failures sync.Mutex
	firstError := ""
	for i, url := range urls {
		streams[i] = &stream{}
		wait.Add(1)
		gate <- struct{}{}
		go func(s *stream, url string) {
			done := sync.OnceFunc(func() { <-gate; wait.Done() })
			fail := func(err error) {
				failures.Lock()
				if firstError == "" {
					firstError = err.Error()
				}
				failures.Unlock()
				done()
			}
			var resp *http.Response
			for attempt := 1; ; attempt++ {
				request, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
				var err error
				resp, err = client.Do(request)
				if err != nil {
					fail(err)
					return
				}
				if resp.StatusCode != http.StatusServiceUnavailable || attempt == 3 {
					break
				}
				resp.Body.Close()
				time.Sleep(time.Second) // the service sheds load while streams open: as a client would
			}
			if resp.StatusCode != http.StatusOK {
				resp.Body.Close()
				fail(fmt.Errorf("HTTP %d", resp.StatusCode))
				return
			}
			s.follow(resp, done)
			done() // a no-op if it opened; else it ended before its first bytes and counts as never opened
		}(streams[i], url)
	}
	wait.Wait()
	open := 0
	for _, s := range streams {
		if s.at(0) != -1 {
			open++
		}
	}
	out := bufio.NewWriter(os.Stdout)
	fmt.Fprintf(out, "open %d %d %q\n", open, len(urls)-open, firstError)
	out.Flush()

	for in.Scan() {
		fields := strings.Fields(in.Text())
		switch {
		case len(fields) == 3 && fields[0] == "wait":
			k, _ := strconv.Atoi(fields[1])
			ms, _ := strconv.Atoi(fields[2])
			deadline := time.Now().Add(time.Duration(ms) * time.Millisecond)
			for time.Now().Before(deadline) {
				all := true
				for _, s := range streams {
					if s.waiting(k) {
						all = false
						break
					}
				}
				if all {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			for _, s := range streams {
				fmt.Fprintln(out, s.at(k))
			}
			fmt.Fprintln(out, "done")
		case len(fields) == 1 && fields[0] == "cpu":
			var usage syscall.Rusage
			syscall.Getrusage(syscall.RUSAGE_SELF, &usage)
			seconds := float64(usage.Utime.Nano()+usage.Stime.Nano()) / 1e9
			fmt.Fprintf(out, "%.3f\n", seconds)
		default:
			fmt.Fprintf(out, "error: unknown command %q\n", in.Text())
		}
		out.Flush()
	}
}
