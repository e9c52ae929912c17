// Command baseline is the yardstick for bench/bench.sh: the seed's http-go
// server as its course material publishes it (httprouter; GET / answers
// "Welcome! <hostname>", looking the hostname up on every request with
// fmt.Fprint; no logging, no extra headers, no server timeouts).
//
// HOSTNAME_ONCE=1 reads the hostname once at start instead: a stricter bar
// that leaves only net/http and httprouter to compare against.
//
// It listens on ADDR (default 127.0.0.1:8081; port 0 picks a free one),
// prints the bound address, and is not part of the image.
package main

import (
	"fmt"
	"log"
	"net"
	"net/http"
	"os"

	"github.com/julienschmidt/httprouter"
)

func index(w http.ResponseWriter, _ *http.Request, _ httprouter.Params) {
	hostname, err := os.Hostname()
	if err != nil {
		hostname = "ERROR"
	}
	fmt.Fprint(w, "Welcome! "+hostname+"\n")
}

func main() {
	handler := index
	if os.Getenv("HOSTNAME_ONCE") == "1" {
		hostname, err := os.Hostname()
		if err != nil {
			log.Fatal(err)
		}
		handler = func(w http.ResponseWriter, _ *http.Request, _ httprouter.Params) {
			fmt.Fprint(w, "Welcome! "+hostname+"\n")
		}
	}
	addr := os.Getenv("ADDR")
	if addr == "" {
		addr = "127.0.0.1:8081"
	}
	router := httprouter.New()
	router.GET("/", handler)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("listening on", ln.Addr())
	log.Fatal(http.Serve(ln, router))
}
