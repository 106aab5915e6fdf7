package echo

import (
	"io"
	"os"
)

// OnStdinClosed calls stop once standard input reaches its end. A test harness starts the program with a pipe it
// never writes to: when the harness dies, even by SIGKILL, the pipe closes and the program stops instead of
// outliving it.
func OnStdinClosed(stop func()) {
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		stop()
	}()
}
