// Command hoststate records what the test cluster's real node changes on
// this machine, and checks or restores it: the sysctls the kubelet,
// kube-proxy and the CNI plugins set, the iptables chains of every table in
// IPv4 and IPv6, the mount points, the directories and cgroups they create,
// the network interfaces and named network namespaces. up.sh saves the
// state before it starts anything; down.sh restores the sysctls and checks
// that the rest is as it was.
//
//	hoststate save FILE      record the state in FILE (JSON)
//	hoststate check FILE     print every difference from FILE; exit 1 if any
//	hoststate restore FILE   set each recorded sysctl back to its value
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
)

func main() {
	root := flag.String("root", "/", "the file system to read (tests use a directory of their own)")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: hoststate [-root DIR] save|check|restore FILE")
	}
	flag.Parse()
	if flag.NArg() != 2 {
		flag.Usage()
		os.Exit(2)
	}
	h := Host{Root: *root}
	if err := run(h, flag.Arg(0), flag.Arg(1)); err != nil {
		fmt.Fprintln(os.Stderr, "hoststate:", err)
		os.Exit(1)
	}
}

func run(h Host, cmd, file string) error {
	switch cmd {
	case "save":
		st, err := h.Read()
		if err != nil {
			return err
		}
		b, err := json.MarshalIndent(st, "", "  ")
		if err != nil {
			return err
		}
		return os.WriteFile(file, append(b, '\n'), 0o644)
	case "check", "restore":
		var before State
		b, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, &before); err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		if cmd == "restore" {
			return h.Restore(before)
		}
		now, err := h.Read()
		if err != nil {
			return err
		}
		diffs := Diff(before, now)
		for _, d := range diffs {
			fmt.Println(d)
		}
		if len(diffs) > 0 {
			return fmt.Errorf("the host differs from %s in %d places", file, len(diffs))
		}
		fmt.Printf("the host is as %s recorded it\n", file)
		return nil
	}
	return fmt.Errorf("unknown command %q: save, check or restore", cmd)
}
