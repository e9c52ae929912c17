module github.com/example/http-go

go 1.25.0

toolchain go1.26.8

require github.com/julienschmidt/httprouter v1.3.0

require golang.org/x/sys v0.42.0
