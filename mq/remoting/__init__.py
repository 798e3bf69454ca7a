"""RocketMQ remoting: frames, headers, commands and the Twisted protocol that carries them."""
