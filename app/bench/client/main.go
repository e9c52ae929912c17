// Command client is bench/instructions.sh's load: N sequential keep-alive
// GET / requests over four connections, each answer checked (200 and a body
// starting "Welcome! "). Sequential, so that the server under valgrind is
// never waiting on a slow client in the middle of a count.
//
// Usage: client N HOST:PORT
package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) != 2 {
		return fmt.Errorf("usage: client N HOST:PORT")
	}
	n, err := strconv.Atoi(args[0])
	if err != nil || n < 1 {
		return fmt.Errorf("N=%q: want a positive whole number", args[0])
	}
	const conns = 4
	var cs [conns]net.Conn
	var rs [conns]*bufio.Reader
	for i := range cs {
		if cs[i], err = net.Dial("tcp", args[1]); err != nil {
			return err
		}
		defer cs[i].Close()
		rs[i] = bufio.NewReader(cs[i])
	}
	request := []byte("GET / HTTP/1.1\r\nHost: " + args[1] + "\r\n\r\n")
	for i := range n {
		if _, err := cs[i%conns].Write(request); err != nil {
			return err
		}
		resp, err := http.ReadResponse(rs[i%conns], nil)
		if err != nil {
			return err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || !bytes.HasPrefix(body, []byte("Welcome! ")) {
			return fmt.Errorf("request %d: %s %q (%v)", i, resp.Status, body, err)
		}
	}
	return nil
}
