"""Installs model_pruning: graph-mode weight pruning for TensorFlow 2.21 (tf.compat.v1)."""
import setuptools

_TEST_REQUIRES = [
    "pytest==9.0.3",
    "hypothesis==6.155.2",
    "tf_keras==2.21.0",      # only to test the layers under TF_USE_LEGACY_KERAS=1
    "matplotlib==3.11.2",    # mask pictures (check_sparsity --plot)
    "scikit-learn==1.9.1",   # bundled digits and diabetes data (studies, XNNPACK example)
    "statsmodels==0.15.0",   # the size study's bundled yearly sunspots
]

# The real-data studies (examples/size_study, examples/structured_pruning)
# and examples/mobilenet_xnnpack:
# bundled data sets (nothing is downloaded) and the plots.
_EXAMPLES_REQUIRES = [
    "scikit-learn==1.9.1",
    "statsmodels==0.15.0",
    "matplotlib==3.11.2",
]

setuptools.setup(
    name="model_pruning",
    version="0.1.0",
    description=("Graph-mode magnitude pruning for TensorFlow (tf.compat.v1): "
                 "a drop-in replacement for tf.contrib.model_pruning."),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=setuptools.find_packages(include=["model_pruning", "model_pruning.*"]),
    # The fused kernels' source: model_pruning builds it on first use
    # (native_kernels; needs g++ or $CXX, else TensorFlow ops run instead).
    package_data={"model_pruning.python": ["native/*.cc"]},
    python_requires=">=3.10",
    install_requires=[
        "tensorflow-cpu==2.21.0; platform_machine == 'x86_64' or platform_machine == 'AMD64'",
        "tensorflow==2.21.0; platform_machine != 'x86_64' and platform_machine != 'AMD64'",
        "numpy>=1.26,<3",
        "absl-py>=2.1,<3",
    ],
    extras_require={
        "test": _TEST_REQUIRES,
        "plot": ["matplotlib==3.11.2"],
        "examples": _EXAMPLES_REQUIRES,
    },
    entry_points={
        "console_scripts": [
            "strip_pruning_vars=model_pruning.python.strip_pruning_vars:run_main",
            "check_sparsity=model_pruning.python.check_sparsity:run_main",
        ],
    },
)
