// Command hoststate records what the test cluster's real node changes on
// this machine, and checks or restores it: the sysctls the kubelet,
// kube-proxy and the CNI plugins set, the iptables chains of every table in
// IPv4 and IPv6, the mount points, the directories and cgroups they create,
// the network interfaces and named network namespaces. up.sh saves the
// state before it starts anything; down.sh restores it and checks that it
// is as it was.
//
//	hoststate save FILE      record the state in FILE (JSON)
//	hoststate check FILE     print every difference from FILE; exit 1 if any
//	hoststate restore FILE   undo what the node left: its mounts, network
//	                         namespaces, interfaces, chains, cgroups and
//	                         directories removed, each sysctl set back
//	hoststate clean          without a record: remove what a node left
//	                         (for a host whose record was lost with the
//	                         node); sysctls are printed, not changed
//
// save refuses a host that still carries this cluster's node: the record
// would take the node's leftovers for the host's own.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

func main() {
	root := flag.String("root", "/", "the file system to read (tests use a directory of their own)")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: hoststate [-root DIR] save|check|restore FILE | clean")
	}
	flag.Parse()
	if flag.NArg() == 1 && flag.Arg(0) == "clean" {
		if err := clean(Host{Root: *root}, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "hoststate:", err)
			os.Exit(1)
		}
		return
	}
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
		if left := st.Leftovers(); len(left) > 0 {
			return fmt.Errorf("the host still carries a real node of this cluster, and no record of what it was before it:\n  %s\n"+
				"stop it with make cluster-down, or, if its record is lost, remove it with %s clean", strings.Join(left, "\n  "), os.Args[0])
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
	return fmt.Errorf("unknown command %q: save, check, restore or clean", cmd)
}

// clean removes a node's leftovers and prints the sysctls a node sets,
// as they are now, since their values before it are not known.
func clean(h Host, w io.Writer) error {
	sysctls, err := h.Clean()
	fmt.Fprintln(w, "the sysctls a node may set, as they are now (set back by hand any the node changed):")
	for _, k := range Sysctls {
		if v, ok := sysctls[k]; ok {
			fmt.Fprintf(w, "  %s = %s\n", k, v)
		}
	}
	if err != nil {
		return err
	}
	now, err := h.Read()
	if err != nil {
		return err
	}
	if left := now.Leftovers(); len(left) > 0 {
		return fmt.Errorf("still left:\n  %s", strings.Join(left, "\n  "))
	}
	return nil
}
