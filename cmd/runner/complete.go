package main

import (
	"maps"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/perfrunner/runner/kube"
	"github.com/perfrunner/runner/scenario"
)

// Shell completion (runner completion bash|zsh|fish|powershell): scenario
// and matrix files, run directories, pace-set names and variables of the
// scenario on the line, targets, formats and kube contexts.

// completeYAML completes the first argument with YAML files and
// directories.
func completeYAML(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	return []string{"yaml", "yml"}, cobra.ShellCompDirectiveFilterFileExt
}

// completeDirs completes run directories.
func completeDirs(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return nil, cobra.ShellCompDirectiveFilterDirs
}

// fixed completes a flag with a fixed set of words.
func fixed(words ...string) cobra.CompletionFunc {
	return func(_ *cobra.Command, _ []string, prefix string) ([]string, cobra.ShellCompDirective) {
		return matching(prefix, words, nil), cobra.ShellCompDirectiveNoFileComp
	}
}

// matching returns the words that start with prefix, each followed by a
// tab and its description where describe gives one.
func matching(prefix string, words []string, describe func(string) string) []string {
	var out []string
	for _, w := range words {
		if !strings.HasPrefix(w, prefix) {
			continue
		}
		if describe != nil {
			w += "\t" + describe(w)
		}
		out = append(out, w)
	}
	return out
}

// scenarioOnLine decodes the scenario file given as the command's first
// argument, ignoring its problems: only its pace sets and variables are
// wanted.
func scenarioOnLine(args []string) *scenario.Scenario {
	if len(args) == 0 {
		return nil
	}
	sc, err := scenario.Load(args[0], scenario.Options{})
	if sc == nil && err != nil {
		return nil
	}
	return sc
}

// completePace completes --pace with the scenario's pace sets.
func completePace(_ *cobra.Command, args []string, prefix string) ([]string, cobra.ShellCompDirective) {
	sc := scenarioOnLine(args)
	if sc == nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	names := slices.Sorted(maps.Keys(sc.PaceSets))
	return matching(prefix, names, func(name string) string { return sc.PaceSets[name] }), cobra.ShellCompDirectiveNoFileComp
}

// completeSet completes --set with the scenario's variables, as key=.
func completeSet(_ *cobra.Command, args []string, prefix string) ([]string, cobra.ShellCompDirective) {
	sc := scenarioOnLine(args)
	if sc == nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var keys []string
	for name := range maps.Keys(sc.Vars) {
		keys = append(keys, name+"=")
	}
	slices.Sort(keys)
	return matching(prefix, keys, nil), cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
}

// completeContext completes --context with the kubeconfig's contexts.
func completeContext(cmd *cobra.Command, _ []string, prefix string) ([]string, cobra.ShellCompDirective) {
	kubeconfig, _ := cmd.Flags().GetString("kubeconfig")
	names, err := kube.Contexts(kubeconfig)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return matching(prefix, names, nil), cobra.ShellCompDirectiveNoFileComp
}

// registerCompletions sets the completions of every command under root:
// its arguments by what they are, and the flags it has among those known.
func registerCompletions(root *cobra.Command) {
	flagCompletions := map[string]cobra.CompletionFunc{
		"pace":       completePace,
		"set":        completeSet,
		"target":     fixed("local", "kubernetes"),
		"output":     fixed("text", "json"),
		"context":    completeContext,
		"kubeconfig": completeAnyFile,
		"values":     completeYAML,
	}
	formats := map[string]cobra.CompletionFunc{
		"plot":    fixed("png", "svg"),
		"compare": fixed("table", "md", "json"),
	}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		switch {
		case strings.Contains(c.Use, "RUN_DIR") || strings.Contains(c.Use, "RESULTS_DIR"):
			c.ValidArgsFunction = completeDirs
		case strings.Contains(c.Use, "FILE"):
			c.ValidArgsFunction = completeYAML
		}
		for name, f := range flagCompletions {
			if c.Flags().Lookup(name) != nil {
				_ = c.RegisterFlagCompletionFunc(name, f)
			}
		}
		if f, ok := formats[c.Name()]; ok && c.Flags().Lookup("format") != nil {
			_ = c.RegisterFlagCompletionFunc("format", f)
		}
	}
	walk(root)
}

// completeAnyFile completes a kubeconfig: any file.
func completeAnyFile(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return nil, cobra.ShellCompDirectiveDefault
}
