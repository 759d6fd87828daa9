# Sourced by the GPU scripts (run-device.sh, run-wgpu-autotune.sh, run-flowers-prune.sh) on a
# Linux machine with an NVIDIA GPU and driver: unpacks the Vulkan/EGL loader packages in .gl (for
# a system image without them) and points them at NVIDIA's Vulkan and EGL files;
# `unpack_pare XZ DEST` unpacks an xz-compressed pare binary (.devbin/*.xz).
for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -f "$icd" ] && export VK_DRIVER_FILES=$icd __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
export PYTHONUNBUFFERED=1

unpack_pare() {
  python3 -c "import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], 'wb'))" "$1" "$2"
  chmod +x "$2"
}
