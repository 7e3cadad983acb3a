package main

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// Sysctls are the kernel parameters the real node may set: the kubelet's
// (overcommit, panic on OOM, keyrings), kube-proxy's (conntrack table and
// timeouts, route_localnet), the bridge plugin's (forwarding) and those of
// br_netfilter.
var Sysctls = []string{
	"vm.overcommit_memory",
	"vm.panic_on_oom",
	"kernel.panic",
	"kernel.panic_on_oops",
	"kernel.keys.root_maxkeys",
	"kernel.keys.root_maxbytes",
	"net.ipv4.ip_forward",
	"net.ipv4.conf.all.forwarding",
	"net.ipv4.conf.all.route_localnet",
	"net.ipv6.conf.all.forwarding",
	"net.bridge.bridge-nf-call-iptables",
	"net.bridge.bridge-nf-call-ip6tables",
	"net.netfilter.nf_conntrack_max",
	"net.netfilter.nf_conntrack_tcp_timeout_established",
	"net.netfilter.nf_conntrack_tcp_timeout_close_wait",
	"net.nf_conntrack_max",
}

// Paths are the directories the runtime, the kubelet and the CNI plugins
// create; a pattern with * is a glob, so that each cgroup controller's
// kubepods counts.
var Paths = []string{
	"/var/lib/kubelet",
	"/var/log/pods",
	"/var/log/containers",
	"/run/containerd",
	"/var/lib/containerd",
	"/var/lib/cni",
	"/var/run/netns",
	"/etc/cni/net.d",
	"/sys/fs/cgroup/*/kubepods*",
	"/sys/fs/cgroup/kubepods*",
}

// Tables are the iptables tables whose chains are recorded.
var Tables = []string{"filter", "nat", "mangle", "raw"}

// State is what the real node may change on the host.
type State struct {
	Sysctls    map[string]string   `json:"sysctls"`    // those present, by name
	Chains     map[string][]string `json:"chains"`     // "iptables/nat" → its chains, sorted; tools not installed are left out
	Mounts     []string            `json:"mounts"`     // mount points, sorted
	Paths      []string            `json:"paths"`      // the Paths that exist, sorted
	Interfaces []string            `json:"interfaces"` // network interfaces, sorted
	Netns      []string            `json:"netns"`      // named network namespaces, sorted
}

// Host reads and restores the state of the file system at Root.
type Host struct {
	Root string
	// IPTables lists the chains of table with the command tool
	// ("iptables", "ip6tables"); nil runs tool-save. ok is false when
	// the tool is not installed.
	IPTables func(tool, table string) (chains []string, ok bool, err error)
}

func (h Host) path(p string) string { return filepath.Join(h.Root, p) }

// Read records the host's state now.
func (h Host) Read() (State, error) {
	st := State{Sysctls: map[string]string{}, Chains: map[string][]string{}}
	for _, k := range Sysctls {
		b, err := os.ReadFile(h.sysctlPath(k))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return st, err
		}
		st.Sysctls[k] = strings.TrimSpace(string(b))
	}
	list := h.IPTables
	if list == nil {
		list = iptablesSave
	}
	for _, tool := range []string{"iptables", "ip6tables"} {
		for _, t := range Tables {
			chains, ok, err := list(tool, t)
			if err != nil {
				return st, fmt.Errorf("%s -t %s: %w", tool, t, err)
			}
			if ok {
				st.Chains[tool+"/"+t] = chains
			}
		}
	}
	mounts, err := h.mounts()
	if err != nil {
		return st, err
	}
	st.Mounts = mounts
	for _, p := range Paths {
		matches, _ := filepath.Glob(h.path(p))
		for _, m := range matches {
			rel, _ := filepath.Rel(h.Root, m)
			st.Paths = append(st.Paths, "/"+rel)
		}
	}
	sort.Strings(st.Paths)
	st.Interfaces = h.names("/sys/class/net")
	st.Netns = h.names("/var/run/netns")
	return st, nil
}

func (h Host) sysctlPath(key string) string {
	return h.path("/proc/sys/" + strings.ReplaceAll(key, ".", "/"))
}

// names lists a directory's entries, sorted; none when it does not exist.
func (h Host) names(dir string) []string {
	entries, _ := os.ReadDir(h.path(dir))
	out := []string{}
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// mounts reads the mount points of /proc/self/mountinfo (its fifth field).
func (h Host) mounts() ([]string, error) {
	f, err := os.Open(h.path("/proc/self/mountinfo"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) > 4 {
			out = append(out, fields[4])
		}
	}
	sort.Strings(out)
	return out, sc.Err()
}

// iptablesSave lists a table's chains from tool-save's ":CHAIN" lines.
func iptablesSave(tool, table string) ([]string, bool, error) {
	bin, err := exec.LookPath(tool + "-save")
	if err != nil {
		return nil, false, nil
	}
	out, err := exec.Command(bin, "-t", table).Output()
	if err != nil {
		// A table the kernel does not have (raw without its module).
		return nil, true, nil
	}
	var chains []string
	for _, line := range strings.Split(string(out), "\n") {
		if name, ok := strings.CutPrefix(line, ":"); ok {
			chains = append(chains, strings.Fields(name)[0])
		}
	}
	sort.Strings(chains)
	return chains, true, nil
}

// Restore sets each sysctl of before back to its value where it differs.
func (h Host) Restore(before State) error {
	var errs []error
	for k, v := range before.Sysctls {
		p := h.sysctlPath(k)
		now, err := os.ReadFile(p)
		if err != nil || strings.TrimSpace(string(now)) == v {
			continue
		}
		if err := os.WriteFile(p, []byte(v+"\n"), 0o644); err != nil {
			errs = append(errs, fmt.Errorf("sysctl %s back to %s: %w", k, v, err))
		}
	}
	return errors.Join(errs...)
}

// Diff lists how now differs from before, one line per difference.
func Diff(before, now State) []string {
	var out []string
	for _, k := range Sysctls {
		b, inB := before.Sysctls[k]
		n, inN := now.Sysctls[k]
		if inB != inN || b != n {
			out = append(out, fmt.Sprintf("sysctl %s: %q before, %q now", k, b, n))
		}
	}
	tables := map[string]bool{}
	for t := range before.Chains {
		tables[t] = true
	}
	for t := range now.Chains {
		tables[t] = true
	}
	names := make([]string, 0, len(tables))
	for t := range tables {
		names = append(names, t)
	}
	sort.Strings(names)
	for _, t := range names {
		out = append(out, setDiff("chain "+t, before.Chains[t], now.Chains[t])...)
	}
	out = append(out, setDiff("mount", before.Mounts, now.Mounts)...)
	out = append(out, setDiff("path", before.Paths, now.Paths)...)
	out = append(out, setDiff("interface", before.Interfaces, now.Interfaces)...)
	out = append(out, setDiff("netns", before.Netns, now.Netns)...)
	return out
}

// setDiff names what now has more of than before (left behind) and the
// reverse (gone), counting repeats: a mount point mounted twice is two.
func setDiff(what string, before, now []string) []string {
	count := map[string]int{}
	for _, b := range before {
		count[b]--
	}
	for _, n := range now {
		count[n]++
	}
	keys := make([]string, 0, len(count))
	for k := range count {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []string
	for _, k := range keys {
		switch c := count[k]; {
		case c > 0:
			out = append(out, fmt.Sprintf("%s %s: left behind (%d more)", what, k, c))
		case c < 0:
			out = append(out, fmt.Sprintf("%s %s: gone (%d fewer)", what, k, -c))
		}
	}
	return out
}
