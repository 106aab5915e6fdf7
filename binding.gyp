# node-gyp build of the SO_ORIGINAL_DST addon (DESIGN.md §4) -> build/Release/original_dst.node
{
  "targets": [
    {
      "target_name": "original_dst",
      "sources": ["agent/native/original_dst.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-std=c11", "-Wall", "-Wextra", "-O2"]
    }
  ]
}
