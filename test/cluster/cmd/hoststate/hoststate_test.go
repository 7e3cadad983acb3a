package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeHost lays out a file system with two sysctls, one mount, one
// interface and one cgroup controller, and iptables with one chain.
func fakeHost(t *testing.T) (Host, map[string][]string) {
	root := t.TempDir()
	write := func(p, content string) {
		t.Helper()
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("proc/sys/vm/overcommit_memory", "0\n")
	write("proc/sys/net/ipv4/ip_forward", "0\n")
	write("proc/self/mountinfo", "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n")
	write("sys/class/net/lo/type", "772\n")
	if err := os.MkdirAll(filepath.Join(root, "sys/fs/cgroup/memory"), 0o755); err != nil {
		t.Fatal(err)
	}
	chains := map[string][]string{"iptables/filter": {"FORWARD", "INPUT", "OUTPUT"}}
	h := Host{Root: root, IPTables: func(tool, table string) ([]string, bool, error) {
		if tool != "iptables" {
			return nil, false, nil // as if ip6tables were not installed
		}
		return chains[tool+"/"+table], true, nil
	}}
	return h, chains
}

// TestEveryChangeIsFoundAndSysctlsRestored changes each kind of state a
// node leaves: check names each, restore puts the sysctls back, and once
// the rest is undone the host is as recorded.
func TestEveryChangeIsFoundAndSysctlsRestored(t *testing.T) {
	h, chains := fakeHost(t)
	before, err := h.Read()
	if err != nil {
		t.Fatal(err)
	}
	if before.Sysctls["vm.overcommit_memory"] != "0" || len(before.Sysctls) != 2 || len(before.Mounts) != 1 || before.Interfaces[0] != "lo" {
		t.Fatalf("recorded %+v", before)
	}
	r := func(p string) string { return filepath.Join(h.Root, p) }
	_ = os.WriteFile(r("proc/sys/vm/overcommit_memory"), []byte("1\n"), 0o644)
	_ = os.WriteFile(r("proc/sys/net/ipv4/ip_forward"), []byte("1\n"), 0o644)
	chains["iptables/nat"] = []string{"KUBE-SERVICES"}
	_ = os.WriteFile(r("proc/self/mountinfo"), []byte("22 1 8:1 / / rw - ext4 /dev/sda1 rw\n40 22 8:1 /kubelet /var/lib/kubelet rw - ext4 /dev/sda1 rw\n41 22 8:1 /kubelet /var/lib/kubelet rw - ext4 /dev/sda1 rw\n"), 0o644)
	_ = os.MkdirAll(r("var/lib/kubelet"), 0o755)
	_ = os.MkdirAll(r("sys/fs/cgroup/memory/kubepods"), 0o755)
	_ = os.MkdirAll(r("sys/class/net/cni0"), 0o755)
	now, err := h.Read()
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(Diff(before, now), "\n")
	for _, want := range []string{
		`sysctl vm.overcommit_memory: "0" before, "1" now`,
		`sysctl net.ipv4.ip_forward: "0" before, "1" now`,
		"chain iptables/nat KUBE-SERVICES: left behind (1 more)",
		"mount /var/lib/kubelet: left behind (2 more)",
		"path /var/lib/kubelet: left behind",
		"path /sys/fs/cgroup/memory/kubepods: left behind",
		"interface cni0: left behind",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the differences do not say %q:\n%s", want, got)
		}
	}
	if err := h.Restore(before); err != nil {
		t.Fatal(err)
	}
	delete(chains, "iptables/nat")
	_ = os.WriteFile(r("proc/self/mountinfo"), []byte("22 1 8:1 / / rw - ext4 /dev/sda1 rw\n"), 0o644)
	for _, p := range []string{"var/lib/kubelet", "sys/fs/cgroup/memory/kubepods", "sys/class/net/cni0"} {
		_ = os.RemoveAll(r(p))
	}
	after, err := h.Read()
	if err != nil {
		t.Fatal(err)
	}
	if d := Diff(before, after); len(d) > 0 {
		t.Errorf("after restoring: %v", d)
	}
}

// TestCheckFailsOnADifference runs save and check as down.sh does.
func TestCheckFailsOnADifference(t *testing.T) {
	h, _ := fakeHost(t)
	file := filepath.Join(t.TempDir(), "before.json")
	if err := run(h, "save", file); err != nil {
		t.Fatal(err)
	}
	if err := run(h, "check", file); err != nil {
		t.Errorf("an unchanged host: %v", err)
	}
	_ = os.MkdirAll(filepath.Join(h.Root, "var/run/netns/cni-1"), 0o755)
	if err := run(h, "check", file); err == nil || !strings.Contains(err.Error(), "2 places") {
		t.Errorf("a host with a netns and its directory left: %v", err)
	}
	if err := run(h, "frobnicate", file); err == nil {
		t.Error("an unknown command passed")
	}
}
