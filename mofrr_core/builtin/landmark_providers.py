"""Built-in plugin: face landmark providers (MediaPipe face mesh, dlib), each an optional extra."""
