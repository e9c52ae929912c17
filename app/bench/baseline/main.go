// Command baseline is the yardstick for app/bench/bench.sh: a minimal server
// in the style of the seed's http-go image (httprouter, GET / answers
// "Welcome! <hostname>"), with nothing else: no logging, no extra headers, no
// server timeouts. The hostname is read once at start, which makes it a
// stricter bar than looking it up on every request.
//
// It listens on ADDR (default 127.0.0.1:8081; a port of 0 picks a free one),
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

func main() {
	hostname, err := os.Hostname()
	if err != nil {
		log.Fatal(err)
	}
	addr := os.Getenv("ADDR")
	if addr == "" {
		addr = "127.0.0.1:8081"
	}
	router := httprouter.New()
	router.GET("/", func(w http.ResponseWriter, _ *http.Request, _ httprouter.Params) {
		fmt.Fprint(w, "Welcome! "+hostname+"\n")
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("listening on", ln.Addr())
	log.Fatal(http.Serve(ln, router))
}
