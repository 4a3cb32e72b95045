/* A real TFLite external delegate library that fails on purpose, to test hal's delegate error paths
 * without hardware. Built by tests/hal/test_devices.py with the system C compiler.
 *
 * Options: mode=fail-create  -> tflite_plugin_create_delegate reports an error and returns NULL
 *                               (what libedgetpu does when no Edge TPU is attached);
 *          mode=reject-graph -> a delegate whose Prepare fails (an op/graph the delegate cannot take);
 *          mode=take-nothing -> a delegate that claims no op, so the model runs on the CPU kernels behind it
 *                               (a working device path: load, run and probe through a delegate).
 * Struct layout: TfLiteDelegate of tensorflow/lite/core/c/common.h (TF 2.x).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct TfLiteDelegate {
  void* data_;
  int (*Prepare)(void* context, struct TfLiteDelegate* delegate);
  int (*CopyFromBufferHandle)(void*, struct TfLiteDelegate*, int, void*);
  int (*CopyToBufferHandle)(void*, struct TfLiteDelegate*, int, void*);
  void (*FreeBufferHandle)(void*, struct TfLiteDelegate*, int*);
  int64_t flags;
  void* opaque_delegate_builder;
} TfLiteDelegate;

static int reject_prepare(void* context, TfLiteDelegate* delegate) {
  (void)context; (void)delegate;
  return 1; /* kTfLiteError */
}

static int take_nothing_prepare(void* context, TfLiteDelegate* delegate) {
  (void)context; (void)delegate;
  return 0; /* kTfLiteOk, no node replaced */
}

TfLiteDelegate* tflite_plugin_create_delegate(char** keys, char** values, size_t n,
                                              void (*report_error)(const char*)) {
  const char* mode = "fail-create";
  for (size_t i = 0; i < n; ++i)
    if (strcmp(keys[i], "mode") == 0) mode = values[i];
  if (strcmp(mode, "reject-graph") == 0 || strcmp(mode, "take-nothing") == 0) {
    TfLiteDelegate* d = (TfLiteDelegate*)calloc(1, sizeof(TfLiteDelegate));
    d->Prepare = strcmp(mode, "reject-graph") == 0 ? reject_prepare : take_nothing_prepare;
    return d;
  }
  if (report_error) report_error("fake delegate: no device attached");
  return NULL;
}

void tflite_plugin_destroy_delegate(TfLiteDelegate* delegate) { free(delegate); }
