module github.com/rapidmq/rapidmq/examples/go

go 1.24

require github.com/rapidmq/rapidmq/sdk-go v0.0.0

replace github.com/rapidmq/rapidmq/sdk-go => ../../sdk-go
