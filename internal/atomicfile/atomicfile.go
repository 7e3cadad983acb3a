// Package atomicfile replaces files so that a reader, or a crash, sees the
// old content or the new, never a mix.
package atomicfile

import (
	"encoding/json"
	"os"
)

// Write replaces path with data: it writes a temporary file beside it,
// fsyncs it and renames it over path. On failure, path is as it was and
// the temporary file is gone.
func Write(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if closeErr := f.Close(); err == nil {
		err = closeErr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
	}
	return err
}

// WriteJSON replaces path with v as indented JSON.
func WriteJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return Write(path, append(data, '\n'))
}
