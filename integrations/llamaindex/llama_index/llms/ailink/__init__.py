"""The AIlink gateway as a LlamaIndex LLM (distribution ``llama-index-ailink``).

```python
from llama_index.core import Settings
from llama_index.llms.ailink import AIlink

Settings.llm = AIlink(model="gpt-4o", token="ailink_v1_...", agent_name="rag-bot")
```
"""

from importlib.metadata import version

from llama_index.llms.ailink.base import AIlink, llamaindex_llm
from llama_index.tools.ailink import ailink_session

__all__ = ["AIlink", "__version__", "ailink_session", "llamaindex_llm"]

__version__ = version("llama-index-ailink")
